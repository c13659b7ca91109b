"""Step types, one module each. Importing this package registers them all.

A new step type is a new module here (or in a package listed in
`switchboard.flows.steptypes.STEP_PLUGIN_PACKAGES`) decorated with `@register_step`.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
