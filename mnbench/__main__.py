from mnbench.cli.app import main

main()
