"""Translation between API protocols through one neutral form (neutral.py): per protocol, one
module that reads requests, answers and stream events into the neutral form and writes them
out of it."""
