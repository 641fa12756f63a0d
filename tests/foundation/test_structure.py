# The structure rules of docs/architecture.md, checked on the source: every module of our packages
# imports alone in a fresh interpreter without CUDA; the import graph of our modules (function-level
# imports included, read with `ast`) has no cycle and never reaches a top-level script; function-level
# imports of our own modules carry a comment saying why; bench/ imports nothing from tests/.

import ast
import os
import subprocess
import sys

import dnnlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = ('train', 'gen_images', 'gen_video', 'calc_metrics', 'dataset_tool')

#----------------------------------------------------------------------------
# Reading the source.

def module_files():
    """{module name: path} of every .py file of our packages."""
    found = {}
    for package in dnnlib.PACKAGES:
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, package)):
            for fname in sorted(files):
                if fname.endswith('.py'):
                    rel = os.path.relpath(os.path.join(dirpath, fname), ROOT)[:-3].replace(os.sep, '.')
                    found[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = os.path.join(dirpath, fname)
    return found

def _targets(node, module, is_package, known):
    # Our modules (or scripts) an import statement names; `from a import b` names a.b when that is a module.
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ''
    if node.level:
        parts = module.split('.') if is_package else module.split('.')[:-1]
        parts = parts[:len(parts) - node.level + 1]
        base = '.'.join(parts + ([base] if base else []))
    names = [f'{base}.{alias.name}' for alias in node.names if f'{base}.{alias.name}' in known]
    return names or [base]

def import_edges(files):
    """[(importer, imported, lineno, at_module_level, line has a comment)] for imports of our modules/scripts."""
    ours = tuple(dnnlib.PACKAGES)
    edges = []
    for module, path in files.items():
        source = open(path, encoding='utf-8').read()
        lines = source.splitlines()
        tree = ast.parse(source, path)
        top = {id(n) for n in tree.body}
        top |= {id(c) for n in tree.body if isinstance(n, (ast.If, ast.Try)) for c in ast.walk(n)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(node, module, path.endswith('__init__.py'), files):
                if target.split('.')[0] in ours + SCRIPTS:
                    commented = '#' in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith('#')
                    edges.append((module, target, node.lineno, id(node) in top, commented))
    return edges

def strongly_connected(graph):
    """Tarjan's algorithm: the strongly connected sets of more than one node (the cycles)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(frozenset(component))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result

#----------------------------------------------------------------------------

_IMPORT_EACH_ALONE = r'''
import importlib, sys
import torch
ours = sys.argv[1].split(',')
failures = []
for name in sys.argv[2:]:
    for loaded in [m for m in sys.modules if m.split('.')[0] in ours]:
        del sys.modules[loaded] # Each module imports as if first: nothing of ours is loaded before it.
    try:
        importlib.import_module(name)
    except Exception as e:
        failures.append(f'{name}: {type(e).__name__}: {e}')
    if torch.cuda.is_initialized():
        failures.append(f'{name}: initialised CUDA at import')
print('\n'.join(failures) or f'imported {len(sys.argv) - 2} alone')
'''

def test_every_module_imports_alone_without_cuda():
    modules = sorted(module_files())
    env = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES='', MPLBACKEND='Agg')
    env.pop('CUDA_HOME', None)
    result = subprocess.run([sys.executable, '-c', _IMPORT_EACH_ALONE, ','.join(dnnlib.PACKAGES), *modules],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f'imported {len(modules)} alone', result.stdout[-3000:]

def test_import_graph_has_no_cycle_and_no_script():
    edges = import_edges(module_files())
    scripts = [f'{a}:{n} imports {b}' for a, b, n, _top, _c in edges if b.split('.')[0] in SCRIPTS]
    assert not scripts, '\n'.join(scripts)
    graph = {}
    for a, b, _n, _top, _c in edges:
        if a != b:
            graph.setdefault(a, set()).add(b)
    cycles = [sorted(c) for c in strongly_connected(graph)]
    assert not cycles, cycles

def test_function_level_imports_of_our_modules_say_why():
    undocumented = [f'{a}:{n} imports {b}' for a, b, n, top, commented in import_edges(module_files())
                    if not top and not commented]
    assert not undocumented, '\n'.join(undocumented)

def test_bench_imports_nothing_from_tests():
    offenders = []
    for fname in sorted(os.listdir(os.path.join(ROOT, 'bench'))):
        if fname.endswith('.py'):
            tree = ast.parse(open(os.path.join(ROOT, 'bench', fname), encoding='utf-8').read())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                        [node.module or ''] if isinstance(node, ast.ImportFrom) else []
                offenders += [f'bench/{fname}:{node.lineno}: {n}' for n in names if n.split('.')[0] == 'tests']
    assert not offenders, '\n'.join(offenders)

def test_the_checker_sees_a_cycle_and_a_function_level_import(tmp_path):
    # The graph reader itself: a cycle of two is found; an import inside a function is not top-level.
    assert strongly_connected({'a': {'b'}, 'b': {'a'}, 'c': {'a'}}) == [frozenset({'a', 'b'})]
    (tmp_path / 'one.py').write_text('from training import two\n\ndef f():\n    import train # why\n')
    (tmp_path / 'two.py').write_text('')
    files = {'training.one': str(tmp_path / 'one.py'), 'training.two': str(tmp_path / 'two.py')}
    assert import_edges(files) == [('training.one', 'training.two', 1, True, False), ('training.one', 'train', 4, False, True)]
