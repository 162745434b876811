from cxpar.cli import main

main()
