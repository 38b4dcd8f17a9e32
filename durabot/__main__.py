from durabot.cli import main

main()
