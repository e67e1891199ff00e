"""The control plane's service layer: what the REST API, the pages, the CLI and Docker's API call.

Each function checks access through ``webui.access`` and writes the job in one place, so that no
caller can skip either; it returns the ``Job`` (queued), sent to its host after the commit.

    job = images.pull_image(actor=request.user, host=host, reference="busybox:1.36")
    job = containers.run_container(actor, team, {"image": "busybox", "command": ["true"]})
"""
