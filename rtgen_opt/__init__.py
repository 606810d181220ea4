"""rtgen-opt: how well real-time generative-AI workloads can be scheduled on a laptop SoC.

Data flows one way: scenario + latency database -> task set -> (policy | formulation)
-> schedule -> metrics -> report.
"""

__version__ = "0.1.0"
