from npi_crawler.cli import main

main()
