"""An installed plugin with a bug: importing it raises (tests/test_plugins.py)."""
raise ZeroDivisionError("a bug in the plugin")
