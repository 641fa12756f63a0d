# docs/fundusgan-help.txt: `--help` of `python -m fundus.fundusgan` and of every subcommand.
# Regenerate with: python -m tests.fundus.fundusgan.help_doc

import os

from click.testing import CliRunner

from fundus.fundusgan import __main__ as cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PATH = os.path.join(ROOT, 'docs', 'fundusgan-help.txt')

def help_text():
    parts = []
    for args in [[]] + [[name] for name in sorted(cli.main.commands)]:
        r = CliRunner().invoke(cli.main, args + ['--help'], prog_name='python -m fundus.fundusgan', terminal_width=100)
        assert r.exit_code == 0, r.output
        parts.append(r.output)
    return '\n'.join(parts)

if __name__ == '__main__':
    with open(PATH, 'w', encoding='utf-8') as f:
        f.write(help_text())
