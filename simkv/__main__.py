from simkv.cli.main import main

main()
