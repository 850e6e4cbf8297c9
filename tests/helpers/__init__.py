"""The shared checks every zoo layer goes through (see tests/helpers/cell_contract.py for how cells use them)."""
