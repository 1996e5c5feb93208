from coffeetrace.cli import main

main()
