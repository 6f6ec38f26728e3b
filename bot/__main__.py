"""`python -m bot COMMAND`: the same commands as `flask --app bot COMMAND`."""

from bot.app import main

if __name__ == "__main__":
    main()
