from calo_addon.launcher import main

main()
