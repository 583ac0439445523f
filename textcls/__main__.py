from textcls.cli import main

main()
