"""Run rtgen-opt from a source checkout without installing it: python cli.py --help"""

from rtgen_opt.cli.app import main

if __name__ == "__main__":
    main()
