"""An installed plugin, found through the `specc.layers` entry point (no --plugin). Its class
module does not exist: building with it is the located error a broken install gives."""
from pydantic import BaseModel

import specc


class DoubleArgs(BaseModel):
    pass


specc.register_layer("InstalledDouble", "specc_installed_layers_keras:Double", args=DoubleArgs,
                     shape=lambda args, shapes: shapes[0])
