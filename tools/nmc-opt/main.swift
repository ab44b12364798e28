print("nmc-opt")
