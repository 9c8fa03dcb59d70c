from cosmoskit.cli import main

main()
