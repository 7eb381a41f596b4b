"""Sub-commands of the suyuan command line, one module per topic."""
