"""simkv's version, in a module of its own so that low layers (manifests in
``simkv.atomicio``) can read it without importing the ``simkv`` facade, which imports the
cache, trace and model packages (and would make any of them that writes a file a cycle)."""

__version__ = "0.1.0"
