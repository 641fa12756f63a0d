# python -m fundus.report RUN_DIR: the training-run report.

from fundus.report import run

if __name__ == '__main__':
    run.main()
