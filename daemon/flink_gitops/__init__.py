"""flink-gitops: keeps Apache Flink jobs exactly as a Git repository describes them.

The package follows the reconcile pipeline, one subpackage a stage:
source (Git) → specs (load, validate, hash, diff) → observe (Flink state) →
plan (pure decisions) → execute (intent first, then side effects) → record
(store, audit trail). ``flink`` is the one service that talks to Flink;
``cli`` is the command line over all of them.
"""

__version__ = "0.1.0"
