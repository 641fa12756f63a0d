# Regenerate docs/<tool>-help.txt from the live CLIs (`make help-docs`). Tests compare the two.

import importlib.util
import os
import sys

import click
from click.testing import CliRunner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# script -> committed help file
CLIS = {
    'train.py':        'docs/train-help.txt',
    'gen_images.py':   'docs/gen-images-help.txt',
    'gen_video.py':    'docs/gen-video-help.txt',
    'calc_metrics.py': 'docs/calc-metrics-help.txt',
    'dataset_tool.py': 'docs/dataset-tool-help.txt',
}

#----------------------------------------------------------------------------

def load_cli(script):
    """The click command defined in a top-level script, imported by path."""
    path = os.path.join(ROOT, script)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    spec = importlib.util.spec_from_file_location('_cli_' + script[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    commands = [v for v in vars(module).values() if isinstance(v, click.Command)]
    if len(commands) != 1:
        raise RuntimeError(f'{script}: expected exactly one click command, found {len(commands)}')
    return commands[0]

def help_text(script):
    result = CliRunner().invoke(load_cli(script), ['--help'], prog_name=f'python {script}', terminal_width=100)
    if result.exit_code != 0:
        raise RuntimeError(f'{script} --help failed: {result.output}')
    return result.output

def main():
    for script, doc in CLIS.items():
        if not os.path.isfile(os.path.join(ROOT, script)):
            print(f'skip {script}: not present')
            continue
        with open(os.path.join(ROOT, doc), 'w') as f:
            f.write(help_text(script))
        print(f'wrote {doc}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
