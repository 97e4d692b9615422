"""``python -m ipycap.kernel -f CONNECTION_FILE`` starts the capsule kernel;
``python -m ipycap.kernel install [...]`` installs its kernelspec."""

from ipycap.kernel.app import main

if __name__ == "__main__":
    main()
