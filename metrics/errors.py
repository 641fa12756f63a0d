# The typed errors of the metrics package: the root of its import graph, so every metrics module (and the
# CLIs) can raise and catch them without importing anything else of ours.

#----------------------------------------------------------------------------

class MetricError(ValueError):
    """Bad input to a metric (empty folder, mismatched sizes, unknown name). The CLI prints it as one line."""

class DetectorError(ValueError):
    """A detector file is missing or is not what it claims to be."""

#----------------------------------------------------------------------------
