from coe_template.cli import main

main()
