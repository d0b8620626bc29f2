"""Writes the example domains: it-helpdesk and kitchen-help, each a labelled JSONL file and a router examples file.

The text is the project's own, written for issue 22. Run: python examples/domains/make_domains.py
"""
import json
from pathlib import Path

HERE = Path(__file__).parent
QA = [
    ("Which key combination locks a Windows PC straight away?", "Windows+L", ["Win+L", "Windows key + L", "Windows L"]),
    ("On a Mac, which key combination opens the Force Quit Applications window?", "Command+Option+Escape", ["Cmd+Option+Esc", "Command Option Escape", "Cmd+Alt+Esc"]),
    ("Which key combination opens Task Manager directly in Windows?", "Ctrl+Shift+Esc", ["Control+Shift+Escape", "Ctrl Shift Esc"]),
    ("What does VPN stand for?", "virtual private network", []),
    ("What does MFA stand for in account security?", "multi-factor authentication", ["multifactor authentication", "multi factor authentication"]),
    ("What does the acronym SSO mean for company logins?", "single sign-on", ["single sign on", "single signon"]),
    ("Which port number does HTTPS use by default?", "443", []),
    ("Which port number does SSH listen on by default?", "22", []),
    ("Which port does plain HTTP use by default?", "80", []),
    ("Which port does Remote Desktop Protocol use by default?", "3389", []),
    ("What command shows the IP configuration of a Windows computer in a command prompt?", "ipconfig", ["ipconfig /all"]),
    ("Which Windows command clears the DNS resolver cache?", "ipconfig /flushdns", ["ipconfig/flushdns"]),
    ("Which command-line tool checks whether a host answers ICMP echo requests?", "ping", []),
    ("Which command lists the network hops from your computer to a server on Windows?", "tracert", []),
    ("Which Linux or Mac command shows the route packets take to a host?", "traceroute", []),
    ("Which Windows command checks system files for corruption and repairs them?", "sfc /scannow", ["sfc", "System File Checker"]),
    ("Which Windows command forces an immediate refresh of Group Policy?", "gpupdate /force", ["gpupdate"]),
    ("Which Windows command shows who you are logged in as?", "whoami", []),
    ("In which Windows tool do you see and end running processes?", "Task Manager", []),
    ("What is the name of Apple's built-in backup tool for Macs?", "Time Machine", []),
    ("What is the name of the disk encryption built into Windows Pro editions?", "BitLocker", []),
    ("What is the name of the full-disk encryption built into macOS?", "FileVault", []),
    ("Which protocol automatically hands out IP addresses on a network?", "DHCP", ["Dynamic Host Configuration Protocol"]),
    ("Which system turns a website name into an IP address?", "DNS", ["Domain Name System"]),
    ("What is the loopback IPv4 address of your own computer?", "127.0.0.1", ["localhost"]),
    ("How many bits long is an IPv4 address?", "32", []),
    ("How many bits long is an IPv6 address?", "128", []),
    ("What kind of attack tricks staff into giving away passwords through a fake email?", "phishing", []),
    ("What kind of malicious software encrypts your files and demands payment?", "ransomware", []),
    ("Is it safe to share your password with the IT helpdesk if they ask by email?", "no", []),
    ("Should you plug in a USB stick you found in the car park to see whose it is?", "no", []),
    ("Does a longer password generally make brute-force guessing harder?", "yes", []),
    ("Can you usually recover a file emptied from the Recycle Bin without a backup?", "no", []),
    ("Is restarting the computer a sensible first step when an application keeps freezing?", "yes", []),
    ("Does turning Wi-Fi off and on again reset the wireless connection on a laptop?", "yes", []),
    ("Which Microsoft application is used for company email and calendars?", "Outlook", ["Microsoft Outlook"]),
    ("Which Microsoft application do many companies use for chat and video meetings?", "Teams", ["Microsoft Teams"]),
    ("What file extension do Excel workbooks usually have?", ".xlsx", ["xlsx"]),
    ("What file extension does a Word document usually have?", ".docx", ["docx"]),
    ("What file format is best for sending a document that should look the same everywhere?", "PDF", ["Portable Document Format"]),
    ("Which key do you press to take a screenshot of the whole screen on Windows?", "Print Screen", ["PrtSc", "PrtScn", "Print Scrn"]),
    ("Which key combination opens the Snipping Tool for a screenshot region on Windows 10 and 11?", "Windows+Shift+S", ["Win+Shift+S"]),
    ("On a Mac, which key combination takes a screenshot of a selected area?", "Command+Shift+4", ["Cmd+Shift+4"]),
    ("Which keyboard shortcut copies selected text on Windows?", "Ctrl+C", ["Control+C"]),
    ("Which keyboard shortcut undoes the last action on Windows?", "Ctrl+Z", ["Control+Z"]),
    ("Which keyboard shortcut pastes text without formatting in most Windows apps?", "Ctrl+Shift+V", ["Control+Shift+V"]),
    ("What is the name of the Windows feature that rolls the system back to an earlier state?", "System Restore", []),
    ("In which Windows app do you change the default printer?", "Settings", ["Control Panel", "Printers & scanners"]),
    ("What is the usual name of the queue of documents waiting to print?", "print queue", ["print spooler", "spooler"]),
    ("What does the abbreviation Wi-Fi network name SSID stand for?", "service set identifier", []),
    ("Which Wi-Fi security standard is newer: WPA2 or WPA3?", "WPA3", []),
    ("How many gigabytes are in one terabyte, in the decimal units drive makers use?", "1000", []),
    ("How many megabits per second is one gigabit per second?", "1000", []),
    ("What does RAM stand for?", "random access memory", []),
    ("What does SSD stand for?", "solid-state drive", ["solid state drive", "solid state disk"]),
    ("Which company makes the Chrome web browser?", "Google", []),
    ("What is the default web browser that comes with Windows 11?", "Microsoft Edge", ["Edge"]),
    ("Which keyboard shortcut opens a private window in Chrome?", "Ctrl+Shift+N", ["Control+Shift+N"]),
    ("Which keyboard shortcut reloads a web page and bypasses the cache in most browsers on Windows?", "Ctrl+F5", ["Ctrl+Shift+R", "Control+F5"]),
    ("What is the name of the Windows tool that lets a helpdesk technician see your screen with your permission?", "Quick Assist", ["Remote Assistance"]),
]
EXAMPLES = """My laptop will not connect to the office Wi-Fi, what should I try?
How do I reset my password for the company account?
The VPN keeps disconnecting when I work from home
Outlook is not syncing my new emails
How do I set up the authenticator app for two-factor login?
The printer on the third floor says it is offline
My screen goes black when I plug in the docking station
How do I install the approved software on my work laptop?
Teams says my camera is in use by another application
I clicked a link in a suspicious email, what do I do now?
How can I recover a file I deleted from the shared drive yesterday?
My laptop battery drains in two hours, is that normal?
How do I map a network drive on Windows?
The keyboard on my laptop types the wrong characters
I get a certificate warning when I open the intranet page
How do I request access to the finance shared folder?
My account is locked after too many password attempts
The second monitor is not detected
How do I connect to the meeting room projector?
Excel freezes every time I open the large workbook
How do I back up my laptop before it is replaced?
The Wi-Fi is very slow in the east wing
Can I use my personal phone for work email?
My mouse cursor jumps around the screen
How do I turn on disk encryption on my laptop?
Where do I report a lost company phone?
Windows update has been stuck at 30 percent for an hour
I cannot hear anything in my video calls
How do I change the default printer?
The browser says the page cannot be reached but others can open it
How do I share my screen in a Teams meeting?
Why does my computer say the disk is almost full?
Which shortcut opens File Explorer on Windows?
What does the error "DNS server not responding" mean?
Which port does the mail server use for secure IMAP?
What does it mean when Outlook says it is working offline?
What is the difference between a VPN and remote desktop?
Which command shows my computer's host name?
What does two-factor authentication protect against?
What is a strong password policy for staff accounts?
Which file types are blocked as email attachments?
What does the blue screen error code mean on Windows?
How big can an attachment be in a company email?
What does the padlock icon in the browser address bar mean?
Which Windows setting turns on dark mode?
What is the shortcut to switch between open windows?
What does SharePoint do compared with OneDrive?
What is a MAC address on a network card?
Which version of Windows is my laptop running?
What is the name of the Mac app for managing disks?
What does a 404 error on the intranet mean?
What is malware and how does it get onto a laptop?
Which key combination restarts a frozen Mac?
What is the IP address of the office router usually?
What does it mean to whitelist an email sender?
What is the difference between RAM and disk storage?
How many devices can I register for company email?
Which browser does IT support for the intranet?
What is a firewall and why does it block my app?
Which shortcut minimises all windows on Windows?""".splitlines()

with (HERE / "it-helpdesk.jsonl").open("w") as f:
    for i, (q, a, aliases) in enumerate(QA, 1):
        kind = "boolean" if a in ("yes", "no") else "number" if a.isdigit() else "text"
        f.write(json.dumps({"id": f"it-{i:03d}", "domain": "it-helpdesk", "question": q, "answer": a,
                            "answer_type": kind, "aliases": aliases, "source": "written for calibrated-chat",
                            "license": "same as the project"}) + "\n")
(HERE / "it-helpdesk-examples.txt").write_text("\n".join(EXAMPLES) + "\n")
print(len(QA), "questions,", len(EXAMPLES), "examples")

KITCHEN = [
    ("At what temperature in Celsius does water boil at sea level?", "100", []),
    ("How many teaspoons make one tablespoon?", "3", []),
    ("How many tablespoons are in a quarter cup?", "4", []),
    ("How many grams are in one kilogram?", "1000", []),
    ("Which gas makes bread dough rise when yeast ferments?", "carbon dioxide", ["CO2"]),
    ("What is the French term for having all ingredients prepared before cooking?", "mise en place", []),
    ("Which knife cut produces very thin matchstick strips?", "julienne", []),
    ("What do you call cooking food briefly in boiling water and then in ice water?", "blanching", ["blanch"]),
    ("Should raw chicken be washed under the tap before cooking?", "no", []),
    ("Is it safe to refreeze meat that was thawed in the fridge and not cooked?", "yes", []),
    ("To what internal temperature in Celsius should poultry be cooked to be safe?", "74", []),
    ("Which grain is used to make risotto?", "rice", ["arborio rice", "arborio"]),
    ("Which herb is the main ingredient of classic pesto?", "basil", []),
    ("What is the main ingredient of guacamole?", "avocado", []),
    ("Which type of pastry is used for profiteroles?", "choux pastry", ["choux"]),
    ("What sauce is made from butter, egg yolks and lemon juice?", "hollandaise", ["hollandaise sauce"]),
    ("Which spice gives paella its yellow colour?", "saffron", []),
    ("What is the usual oven temperature in Celsius for baking bread, roughly?", "220", []),
    ("Which cheese is traditionally used on a Margherita pizza?", "mozzarella", []),
    ("What is the name for a mixture of flour and fat used to thicken sauces?", "roux", []),
]
KITCHEN_EXAMPLES = """How long should I boil an egg for a runny yolk?
Can I use baking soda instead of baking powder?
What can I substitute for eggs in a cake?
How do I stop pasta sticking together?
Why did my bread not rise?
How long can cooked rice stay in the fridge?
What oven temperature for roasting vegetables?
How do I make a roux for gravy?
Is it safe to eat chicken that is a little pink?
How much salt should I put in pasta water?
How do I sharpen a kitchen knife?
What is the difference between simmering and boiling?
How do I keep guacamole from turning brown?
Can I freeze cooked pasta sauce?
How do I make a sourdough starter?
Why is my cake sinking in the middle?
How do I caramelise onions properly?
What herbs go well with lamb?
How long do I rest a steak after cooking?
How do I convert cups to grams for flour?
What is the best oil for deep frying?
How do I make whipped cream stiff?
What temperature should a fridge be set to?
Which flour is best for bread?
What is the difference between baking soda and baking powder?
How many grams of flour are in a cup?
Which knife is best for chopping vegetables?
What does it mean to fold in egg whites?
Can I cook a frozen chicken breast without thawing it?
How do I thicken a soup without flour?
Why do my pancakes come out flat?""".splitlines()

with (HERE / "kitchen-help.jsonl").open("w") as f:
    for i, (q, a, aliases) in enumerate(KITCHEN, 1):
        kind = "boolean" if a in ("yes", "no") else "number" if a.isdigit() else "text"
        f.write(json.dumps({"id": f"kitchen-{i:03d}", "domain": "kitchen-help", "question": q, "answer": a,
                            "answer_type": kind, "aliases": aliases, "source": "written for calibrated-chat",
                            "license": "same as the project"}) + "\n")
(HERE / "kitchen-help-examples.txt").write_text("\n".join(KITCHEN_EXAMPLES) + "\n")
print(len(KITCHEN), "kitchen questions,", len(KITCHEN_EXAMPLES), "examples")
