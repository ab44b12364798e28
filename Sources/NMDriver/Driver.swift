import NMIR
