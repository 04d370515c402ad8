# The self-reconfiguring chat of figure 6 of the Mobile Streams paper (seed 004), with
# scripted participants in place of keyboards. Run it with `mstream run examples/chat.tcl`.
#
# Participants 1, 2 and 3 each have a display stream S<p> at their own site (figure 6C) and an
# input stream In<p> there (figure 6D: the keyboard, here driven by this script). Everything
# anyone says goes to the dispatcher M, which re-broadcasts it to every display, so all
# displays show one conversation in one order. Every 50 messages M moves itself to the site of
# the participant who said the most (figure 6B), so the most active talker gets the shortest
# round trip. The script makes each participant the talker in turn (40 lines against 5 from
# each lurker), and M follows: to site 1, then 2, then 3.

set participants {1 2 3}

foreach p $participants {
    # C. The display of participant p.
    stream_create S$p -site $p
    register_agent S$p {} {
        on_stream_append {
            puts stdout $argv                                  ;#3
        }
    }
}

# B. The mobile dispatcher.
stream_create M
register_agent M {S1 S2 S3} {
    # find_max: the key of the largest counter (ties: the first in order).
    proc find_max {name} {
        upvar 1 $name counts
        set best ""
        set max -1
        foreach key [lsort [array names counts]] {
            if {$counts($key) > $max} {
                set max $counts($key)
                set best $key
            }
        }
        return $best
    }
    set consumers $argv
    foreach consumer $consumers {
        stream_open $consumer                                  ;#2
        set counter($consumer) 0                               ;#1
    }
    set count 0
    set total 0
    briefcase total
    on_stream_append {
        # Not in the paper: "?" asks how many lines went out, so the script can wait for a
        # round to be over before it starts the next.
        if {$argv eq "?"} {
            return $total
        }
        set loc [stream_sender_name]                           ;#3
        incr count
        incr total
        incr counter($loc)
        foreach stream $consumers {
            stream_append $stream $argv                        ;#4
        }
        if {$count == 50} {
            set newloc [find_max counter]
            stream_relocate [stream_location $newloc]          ;#5
        }
    }
    on_stream_relocation {
        foreach consumer [array names counter] {
            set counter($consumer) 0                           ;#6
        }
        set count 0
        puts "dispatcher M is now at site [stream_location]"
    }
}

foreach p $participants {
    # D. The input of participant p: says N lines to the dispatcher when told "N".
    stream_create In$p -site $p
    register_agent In$p {} {
        set dispatcher [stream_open M]
        on_stream_append {
            for {set i 1} {$i <= $argv} {incr i} {
                stream_append $dispatcher "[stream_name]: line $i"   ;#2
            }
        }
    }
}

set expected 0
foreach talker $participants {
    foreach p $participants {
        set n [expr {$p == $talker ? 40 : 5}]
        stream_append In$p $n
        incr expected $n
    }
    while {[lindex [stream_append M ? -sync] 0] < $expected} {
        after 10
    }
}
puts "chat: $expected lines said"
