"""Airspeed velocity benchmarks for fastdrop (see ``dropout.py``)."""
