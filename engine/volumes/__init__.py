"""Named volumes kept under the engine root, bind mounts, and ``-v``/``--mount`` parsing."""
