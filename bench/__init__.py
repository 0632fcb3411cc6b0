"""`make bench`: our pipeline side by side with its baselines and peers, in one run.

Every number in a result comes from a measurement taken in the same run as its baseline, so a
ratio compares like with like on whatever machine ran it (see results.py for the shape).
"""
