"""automl-seg-random-search: random topologies from the DiNTS space within a memory budget."""

__version__ = "0.1.0"
