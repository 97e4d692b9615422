from IPython.core.interactiveshell import InteractiveShell
sh = InteractiveShell.instance()
sh.run_line_magic("load_ext", "ipycap")
sh.run_cell("import os")
r = sh.run_cell("%%capsule\nimport os\nos.listdir('.')\n")
from ipycap.ipython.magics import extension_for
for c in extension_for(sh).registry.capabilities: print(c)
