from cosmoskit._cli import main

main()
