"""An installed layer plugin with a bug: importing it raises."""
raise RuntimeError("a bug in the layer plugin")
