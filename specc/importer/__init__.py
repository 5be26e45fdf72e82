"""`specc import`: a Keras functional model -> a spec that rebuilds it.

One job per module, in the order the command runs them:

- `sources`: where the model comes from (keras.applications with no download, a .keras file
  refused from its config.json alone, before Keras loads it, so no code from it runs);
- `walk`: the graph walk, call by call (nested functional and Sequential models as their
  layers, a second call of a layer as a format 2 `share:`, raw `keras.ops` calls as the
  catalog layer computing the same floats, a registered class as its registered type);
- `arguments`: each layer's `get_config()` as the arguments a spec author writes;
- `clauses`: in a model specc built, its tap layers, activity and weight regularizers and
  split-off activations as the penalty clauses they carry; `compiled`: the compile config
  (data, never deserialized) as `loss`, `loss_weights`, `metrics`, `optimizer`;
- `convert`: the spec as data (outputs, inputs, loss, notes), folded into blocks by `fold`
  unless asked for the flat form;
- `writing`: the text (specc.yaml_writer, validated like any spec file) and the weights file,
  written atomically; `compare`: the source against the spec's build.

What cannot be written as a spec (a `Lambda`, an unregistered class, an argument the catalog
refuses) is collected, one line per layer, and nothing is written: `ImportRefused` carries
the lines. These modules import Keras; `import specc` does not import them.
"""
from specc.importer.base import PLUGIN_HOOK, ImportRefused, Imported
from specc.importer.compare import compare, same_batch_outputs
from specc.importer.convert import convert
from specc.importer.sources import application, applications, keras_file, registered_classes
from specc.importer.arguments import arguments, keras_defaults, plain
from specc.importer.writing import assign, validated_text, weights_path, write
from specc.yaml_writer import dump as to_yaml

__all__ = ["PLUGIN_HOOK", "ImportRefused", "Imported", "application", "applications",
           "arguments", "assign", "compare", "convert", "keras_defaults", "keras_file", "plain",
           "registered_classes", "same_batch_outputs", "to_yaml", "validated_text",
           "weights_path", "write"]
