import TickwireCommands

await Tickwire.runFromCommandLine()
