print("tickwire")
