// Build the prebuilt extension (../ipycap/labextension) with @jupyterlab/builder, against the
// JupyterLab of the Python environment (its staging/package.json names the shared packages),
// so the build reads nothing from the network.  PYTHON: that environment's interpreter.
const { execFileSync } = require('child_process');
const path = require('path');

const python = process.env.PYTHON || 'python3';
const core = execFileSync(python, [
  '-c',
  'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))'
])
  .toString()
  .trim();
const builder = require.resolve('@jupyterlab/builder/lib/build-labextension.js');
execFileSync(process.execPath, [builder, '--core-path', core, ...process.argv.slice(2), __dirname], {
  stdio: 'inherit'
});
// How the extension was installed (`jupyter labextension list` shows "python, ipycap").
require('fs').copyFileSync(
  path.join(__dirname, 'install.json'),
  path.join(__dirname, '..', 'ipycap', 'labextension', 'install.json')
);
