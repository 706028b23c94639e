"""The operator's side: the command line, status, verify, the operations (reset, resnapshot, drain) and the one
table of operations the CLI and the operations DAG dispatch from, claiming a folder, writing a connector file."""
