from bench.predictive.run import main

if __name__ == "__main__":
    import subprocess
    import sys

    try:
        main()
    except (RuntimeError, ValueError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
