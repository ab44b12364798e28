print("nmc")
