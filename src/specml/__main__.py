from specml.cli.app import main

main()
