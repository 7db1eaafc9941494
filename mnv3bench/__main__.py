from mnv3bench.cli import main

main()
