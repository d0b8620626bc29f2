"""Fact tables for the factual and science questions, as data.

Well-known, stable facts only: countries (capital, currency, continent),
chemical elements, books, landmarks, people, paintings and the planets.
Each table is a list of rows of strings parsed by `_table`; a ``-`` cell is a
fact left out because it is disputed or changing, and ';'-separated cells
hold answer aliases.
"""

from __future__ import annotations

from calibration.labelling.datagen.common import _table

__all__ = [
    "BOOKS",
    "CONTINENT_ALIASES",
    "COUNTRIES",
    "ELEMENTS",
    "LANDMARKS",
    "ORDINALS",
    "PAINTINGS",
    "PEOPLE",
    "PLANETS",
]

# Fact tables: well-known, stable facts only ("-" = left out because disputed or changing).
# country | country aliases | capital | capital aliases | currency | currency aliases | continent
COUNTRIES = _table("""
France | | Paris | | euro | EUR | Europe
Germany | | Berlin | | euro | EUR | Europe
Italy | | Rome | | euro | EUR | Europe
Spain | | Madrid | | euro | EUR | Europe
Portugal | | Lisbon | Lisboa | euro | EUR | Europe
Netherlands | Holland; the Netherlands | Amsterdam | | euro | EUR | Europe
Belgium | | Brussels | Bruxelles | euro | EUR | Europe
Austria | | Vienna | Wien | euro | EUR | Europe
Greece | | Athens | | euro | EUR | Europe
Ireland | Republic of Ireland | Dublin | | euro | EUR | Europe
Finland | | Helsinki | | euro | EUR | Europe
United Kingdom | UK; Britain; Great Britain | London | | pound sterling | pound; British pound; sterling; GBP | Europe
Switzerland | | Bern | Berne | Swiss franc | franc; CHF | Europe
Sweden | | Stockholm | | Swedish krona | krona; SEK | Europe
Norway | | Oslo | | Norwegian krone | krone; NOK | Europe
Denmark | | Copenhagen | | Danish krone | krone; DKK | Europe
Poland | | Warsaw | | Polish złoty | złoty; zloty; PLN | Europe
Czech Republic | Czechia | Prague | | Czech koruna | koruna; crown; CZK | Europe
Hungary | | Budapest | | Hungarian forint | forint; HUF | Europe
Romania | | Bucharest | | Romanian leu | leu; RON | Europe
Iceland | | Reykjavík | | Icelandic króna | króna; krona; ISK | Europe
Serbia | | Belgrade | | Serbian dinar | dinar; RSD | Europe
Ukraine | | Kyiv | Kiev | Ukrainian hryvnia | hryvnia; UAH | Europe
Croatia | | Zagreb | | - | | Europe
Russia | Russian Federation | Moscow | | Russian ruble | ruble; rouble; RUB | -
Turkey | Türkiye | Ankara | | Turkish lira | lira; TRY | -
Egypt | | Cairo | | Egyptian pound | pound; EGP | Africa
Kenya | | Nairobi | | Kenyan shilling | shilling; KES | Africa
Nigeria | | Abuja | | Nigerian naira | naira; NGN | Africa
Morocco | | Rabat | | Moroccan dirham | dirham; MAD | Africa
Ethiopia | | Addis Ababa | | Ethiopian birr | birr; ETB | Africa
Ghana | | Accra | | Ghanaian cedi | cedi; GHS | Africa
Uganda | | Kampala | | Ugandan shilling | shilling; UGX | Africa
Algeria | | Algiers | | Algerian dinar | dinar; DZD | Africa
Tunisia | | Tunis | | Tunisian dinar | dinar; TND | Africa
Senegal | | Dakar | | - | | Africa
South Africa | | - | | South African rand | rand; ZAR | Africa
Japan | | Tokyo | | Japanese yen | yen; JPY | Asia
China | People's Republic of China; PRC | Beijing | Peking | renminbi | yuan; Chinese yuan; RMB; CNY | Asia
India | | New Delhi | Delhi | Indian rupee | rupee; INR | Asia
South Korea | Korea; Republic of Korea | Seoul | | South Korean won | won; Korean won; KRW | Asia
Thailand | | Bangkok | | Thai baht | baht; THB | Asia
Vietnam | Viet Nam | Hanoi | Ha Noi | Vietnamese dong | dong; đồng; VND | Asia
Philippines | the Philippines | Manila | | Philippine peso | peso; PHP | Asia
Pakistan | | Islamabad | | Pakistani rupee | rupee; PKR | Asia
Bangladesh | | Dhaka | Dacca | Bangladeshi taka | taka; BDT | Asia
Saudi Arabia | | Riyadh | | Saudi riyal | riyal; SAR | Asia
Iran | | Tehran | Teheran | Iranian rial | rial; IRR | Asia
Iraq | | Baghdad | | Iraqi dinar | dinar; IQD | Asia
Afghanistan | | Kabul | | Afghan afghani | afghani; AFN | Asia
Nepal | | Kathmandu | | Nepalese rupee | rupee; NPR | Asia
Malaysia | | Kuala Lumpur | | Malaysian ringgit | ringgit; MYR | Asia
Singapore | | - | | Singapore dollar | dollar; SGD | Asia
Indonesia | | - | | Indonesian rupiah | rupiah; IDR | Asia
Qatar | | Doha | | Qatari riyal | riyal; QAR | Asia
Lebanon | | Beirut | | Lebanese pound | pound; lira; LBP | Asia
Syria | | Damascus | | Syrian pound | pound; SYP | Asia
Jordan | | Amman | | Jordanian dinar | dinar; JOD | Asia
Cambodia | | Phnom Penh | | Cambodian riel | riel; KHR | Asia
Laos | | Vientiane | | Lao kip | kip; LAK | Asia
Myanmar | Burma | Naypyidaw | Nay Pyi Taw; Naypyitaw | Myanmar kyat | kyat; MMK | Asia
Mongolia | | Ulaanbaatar | Ulan Bator | Mongolian tögrög | tögrög; tugrik; MNT | Asia
Kazakhstan | | Astana | Nur-Sultan | Kazakhstani tenge | tenge; KZT | -
United States | USA; US; United States of America; America; the United States | Washington, D.C. | Washington; Washington DC | United States dollar | US dollar; dollar; USD | North America
Canada | | Ottawa | | Canadian dollar | dollar; CAD | North America
Mexico | | Mexico City | | Mexican peso | peso; MXN | North America
Cuba | | Havana | La Habana | Cuban peso | peso; CUP | North America
Jamaica | | Kingston | | Jamaican dollar | dollar; JMD | North America
Brazil | | Brasília | | Brazilian real | real; BRL | South America
Argentina | | Buenos Aires | | Argentine peso | peso; ARS | South America
Chile | | Santiago | Santiago de Chile | Chilean peso | peso; CLP | South America
Peru | | Lima | | Peruvian sol | sol; PEN | South America
Colombia | | Bogotá | | Colombian peso | peso; COP | South America
Ecuador | | Quito | | United States dollar | US dollar; dollar; USD | South America
Uruguay | | Montevideo | | Uruguayan peso | peso; UYU | South America
Paraguay | | Asunción | | Paraguayan guaraní | guaraní; guarani; PYG | South America
Venezuela | | Caracas | | - | | South America
Bolivia | | - | | Bolivian boliviano | boliviano; BOB | South America
Australia | | Canberra | | Australian dollar | dollar; AUD | Oceania
New Zealand | | Wellington | | New Zealand dollar | dollar; NZD | Oceania
Fiji | | Suva | | Fijian dollar | dollar; FJD | Oceania
""")
CONTINENT_ALIASES = {"Oceania": ["Australia", "Australia and Oceania", "Australasia"]}

# element name | symbol | atomic number | name aliases
ELEMENTS = _table("""
hydrogen | H | 1 |
helium | He | 2 |
lithium | Li | 3 |
beryllium | Be | 4 |
boron | B | 5 |
carbon | C | 6 |
nitrogen | N | 7 |
oxygen | O | 8 |
fluorine | F | 9 |
neon | Ne | 10 |
sodium | Na | 11 |
magnesium | Mg | 12 |
aluminium | Al | 13 | aluminum
silicon | Si | 14 |
phosphorus | P | 15 |
sulfur | S | 16 | sulphur
chlorine | Cl | 17 |
argon | Ar | 18 |
potassium | K | 19 |
calcium | Ca | 20 |
titanium | Ti | 22 |
chromium | Cr | 24 |
manganese | Mn | 25 |
iron | Fe | 26 |
cobalt | Co | 27 |
nickel | Ni | 28 |
copper | Cu | 29 |
zinc | Zn | 30 |
bromine | Br | 35 |
krypton | Kr | 36 |
silver | Ag | 47 |
tin | Sn | 50 |
iodine | I | 53 |
xenon | Xe | 54 |
tungsten | W | 74 | wolfram
platinum | Pt | 78 |
gold | Au | 79 |
mercury | Hg | 80 |
lead | Pb | 82 |
radon | Rn | 86 |
radium | Ra | 88 |
uranium | U | 92 |
""")

# work | author | author aliases
BOOKS = _table("""
Pride and Prejudice | Jane Austen | Austen
Emma | Jane Austen | Austen
1984 | George Orwell | Orwell; Eric Arthur Blair
Animal Farm | George Orwell | Orwell
Hamlet | William Shakespeare | Shakespeare
Romeo and Juliet | William Shakespeare | Shakespeare
Macbeth | William Shakespeare | Shakespeare
Moby-Dick | Herman Melville | Melville
War and Peace | Leo Tolstoy | Tolstoy; Lev Tolstoy
Anna Karenina | Leo Tolstoy | Tolstoy; Lev Tolstoy
Crime and Punishment | Fyodor Dostoevsky | Dostoevsky; Dostoyevsky
The Brothers Karamazov | Fyodor Dostoevsky | Dostoevsky; Dostoyevsky
The Great Gatsby | F. Scott Fitzgerald | Fitzgerald; Scott Fitzgerald
To Kill a Mockingbird | Harper Lee | Lee
The Odyssey | Homer |
The Iliad | Homer |
Don Quixote | Miguel de Cervantes | Cervantes
Oliver Twist | Charles Dickens | Dickens
A Tale of Two Cities | Charles Dickens | Dickens
Great Expectations | Charles Dickens | Dickens
A Christmas Carol | Charles Dickens | Dickens
Frankenstein | Mary Shelley | Mary Wollstonecraft Shelley
Dracula | Bram Stoker | Stoker
The Adventures of Tom Sawyer | Mark Twain | Twain; Samuel Clemens
Adventures of Huckleberry Finn | Mark Twain | Twain; Samuel Clemens
The Old Man and the Sea | Ernest Hemingway | Hemingway
Brave New World | Aldous Huxley | Huxley
The Catcher in the Rye | J. D. Salinger | JD Salinger; Salinger
Jane Eyre | Charlotte Brontë |
Wuthering Heights | Emily Brontë |
The Hobbit | J. R. R. Tolkien | JRR Tolkien; Tolkien
The Lord of the Rings | J. R. R. Tolkien | JRR Tolkien; Tolkien
Alice's Adventures in Wonderland | Lewis Carroll | Carroll; Charles Dodgson
Les Misérables | Victor Hugo | Hugo
The Hunchback of Notre-Dame | Victor Hugo | Hugo
Ulysses | James Joyce | Joyce
One Hundred Years of Solitude | Gabriel García Márquez | García Márquez; Marquez; Gabriel Garcia Marquez
The Little Prince | Antoine de Saint-Exupéry | Saint-Exupéry
Treasure Island | Robert Louis Stevenson | Stevenson; R. L. Stevenson
The Jungle Book | Rudyard Kipling | Kipling
Gulliver's Travels | Jonathan Swift | Swift
Robinson Crusoe | Daniel Defoe | Defoe
Fahrenheit 451 | Ray Bradbury | Bradbury
The Grapes of Wrath | John Steinbeck | Steinbeck
Of Mice and Men | John Steinbeck | Steinbeck
The Metamorphosis | Franz Kafka | Kafka
The Count of Monte Cristo | Alexandre Dumas | Dumas
The Three Musketeers | Alexandre Dumas | Dumas
The Time Machine | H. G. Wells | HG Wells; Wells
The War of the Worlds | H. G. Wells | HG Wells; Wells
Around the World in Eighty Days | Jules Verne | Verne
Twenty Thousand Leagues Under the Seas | Jules Verne | Verne
Charlotte's Web | E. B. White | EB White; White
The Canterbury Tales | Geoffrey Chaucer | Chaucer
Paradise Lost | John Milton | Milton
The Divine Comedy | Dante Alighieri | Dante
Faust | Johann Wolfgang von Goethe | Goethe
Sense and Sensibility | Jane Austen | Austen
Little Women | Louisa May Alcott | Alcott
The Picture of Dorian Gray | Oscar Wilde | Wilde
""")

# landmark | city | city aliases
LANDMARKS = _table("""
the Eiffel Tower | Paris |
the Louvre | Paris |
the Colosseum | Rome |
the Trevi Fountain | Rome |
the Statue of Liberty | New York City | New York; NYC
the Empire State Building | New York City | New York; NYC
Big Ben | London |
Buckingham Palace | London |
Tower Bridge | London |
the Taj Mahal | Agra |
the Leaning Tower of Pisa | Pisa |
the Sagrada Família | Barcelona |
the Brandenburg Gate | Berlin |
the Kremlin | Moscow |
Saint Basil's Cathedral | Moscow |
the Acropolis | Athens |
the Parthenon | Athens |
the Golden Gate Bridge | San Francisco |
the Sydney Opera House | Sydney |
Christ the Redeemer statue | Rio de Janeiro | Rio
the Forbidden City | Beijing | Peking
the Burj Khalifa | Dubai |
the Petronas Towers | Kuala Lumpur |
the Space Needle | Seattle |
Hagia Sophia | Istanbul |
the Alhambra | Granada |
the CN Tower | Toronto |
the Atomium | Brussels |
the Little Mermaid statue | Copenhagen |
the Charles Bridge | Prague |
the Gateway Arch | St. Louis | Saint Louis; St Louis
the Hollywood Sign | Los Angeles | LA; Hollywood
the Blue Mosque | Istanbul |
the Rijksmuseum | Amsterdam |
the Brooklyn Bridge | New York City | New York; NYC
""")

# what they did (fits "Who ...?") | person | aliases
PEOPLE = _table("""
invented the telephone | Alexander Graham Bell | Graham Bell; Bell
developed the theory of relativity | Albert Einstein | Einstein
discovered penicillin | Alexander Fleming | Fleming
invented the World Wide Web | Tim Berners-Lee | Berners-Lee
formulated the three laws of motion | Isaac Newton | Newton
discovered the elements polonium and radium | Marie Curie | Curie; Maria Skłodowska-Curie
made the first powered airplane flights in 1903 | the Wright brothers | Wright brothers; Orville and Wilbur Wright; Wilbur and Orville Wright
invented dynamite | Alfred Nobel | Nobel
created the first widely recognized periodic table | Dmitri Mendeleev | Mendeleev; Mendeleyev
proposed the theory of evolution by natural selection in On the Origin of Species | Charles Darwin | Darwin
developed the first smallpox vaccine | Edward Jenner | Jenner
developed the first successful injected polio vaccine | Jonas Salk | Salk
discovered X-rays | Wilhelm Röntgen | Röntgen; Roentgen; Wilhelm Roentgen
proposed the heliocentric model of the Solar System in the 16th century | Nicolaus Copernicus | Copernicus
developed pasteurization | Louis Pasteur | Pasteur
discovered the four largest moons of Jupiter | Galileo Galilei | Galileo
discovered electromagnetic induction | Michael Faraday | Faraday
invented Morse code together with Alfred Vail | Samuel Morse | Morse
invented the cotton gin | Eli Whitney | Whitney
introduced movable-type printing to Europe | Johannes Gutenberg | Gutenberg
invented the phonograph | Thomas Edison | Edison; Thomas Alva Edison
was the first person to walk on the Moon | Neil Armstrong | Armstrong
was the first person to travel into space | Yuri Gagarin | Gagarin
""")

# painting | painter | aliases
PAINTINGS = _table("""
the Mona Lisa | Leonardo da Vinci | Leonardo; da Vinci
The Last Supper | Leonardo da Vinci | Leonardo; da Vinci
The Starry Night | Vincent van Gogh | van Gogh
Sunflowers | Vincent van Gogh | van Gogh
Guernica | Pablo Picasso | Picasso
The Scream | Edvard Munch | Munch
The Persistence of Memory | Salvador Dalí | Dalí; Dali
The Birth of Venus | Sandro Botticelli | Botticelli
Girl with a Pearl Earring | Johannes Vermeer | Vermeer; Jan Vermeer
the ceiling of the Sistine Chapel | Michelangelo | Michelangelo Buonarroti
The Night Watch | Rembrandt | Rembrandt van Rijn
Water Lilies | Claude Monet | Monet
""")

PLANETS = ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
