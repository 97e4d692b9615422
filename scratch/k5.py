import os, sys, tempfile, shutil
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_cmd=[sys.executable, "-m", "ipycap.kernel", "-f", "{connection_file}"]) if False else (None, None)
from jupyter_client import KernelManager
km = KernelManager(kernel_cmd=None)
km.kernel_spec_manager  # noqa
km = KernelManager()
km.kernel_cmd = None
