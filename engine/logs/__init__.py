"""Container log files: the k8s-file format conmon writes, reading, following and rotation."""
