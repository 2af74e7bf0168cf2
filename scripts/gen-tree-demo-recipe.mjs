// Writes recipes/tree-search-demo.json from recipes/tree-search-demo/tour_agent.py: the recipe's
// warm-up puts the agent's source in the image's interpreter (a recipe has no file list), and
// tests/tree-search-demo.test.ts checks the two never drift. Run after editing the agent.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const recipes = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'recipes');
export const AGENT_GUEST_DIR = '/opt/forkd-demo';
const source = readFileSync(path.join(recipes, 'tree-search-demo', 'tour_agent.py'), 'utf8');
const python = readFileSync(path.join(recipes, 'python.json'), 'utf8');
const base = JSON.parse(python);
const warmup = [
  base.warmup.python,
  `os.makedirs(${JSON.stringify(AGENT_GUEST_DIR)}, exist_ok=True)`,
  `open(${JSON.stringify(`${AGENT_GUEST_DIR}/tour_agent.py`)}, 'w').write(${JSON.stringify(source)})`,
  `sys.path.insert(0, ${JSON.stringify(AGENT_GUEST_DIR)})`,
  'from tour_agent import TourAgent',
  '_ = TourAgent().report()',
].join('\n');
const recipe = {
  name: 'tree-search-demo',
  description: "forkd's tree-search demo: the python image (same packages, same image) with a small tour-planning agent (tour_agent.py, stochastic decisions under a temperature, no model, no network) in /opt/forkd-demo, imported in the persistent interpreter.",
  suite: base.suite,
  packages: base.packages,
  disk_mib: base.disk_mib,
  default_mem_mib: base.default_mem_mib,
  min_mem_mib: base.min_mem_mib,
  language: 'python',
  warmup: { python_modules: base.warmup.python_modules, python: warmup },
};
writeFileSync(path.join(recipes, 'tree-search-demo.json'), `${JSON.stringify(recipe, null, 2)}\n`);
