"""`make bench-peers`: Tandem and its peers side by side (bench/peers_bench.py runs it).

One module per job: the peers' own model preparation (prepare.py, run in the
peers' virtualenv), the servers and how to start each (servers.py), process
trees read from /proc (proctree.py), the vector agreement check
(agreement.py), one server's measurements (measure.py) and the page
(report.py).
"""
