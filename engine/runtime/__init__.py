"""OCI runtimes (runc, crun): probing, and later the driver, monitor and exec."""
