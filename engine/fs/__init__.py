"""Files under a root the engine does not trust: one resolver (``resolve``), one extractor (``extract``), one copier (``copy``)."""
