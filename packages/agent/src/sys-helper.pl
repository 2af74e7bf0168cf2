#!/usr/bin/perl
# forkd system helper: does what Node cannot (clock_settime, RNG ioctls). Started by the agent
# before the snapshot, so restored children pay no exec. Uses only perl-base builtins.
# Protocol: one command per line on stdin, one reply per line on stdout:
#   <id> ping                      -> <id> ok pong
#   <id> clock <sysno> <sec> <nsec> -> <id> ok | <id> err <reason>
#   <id> entropy <hex>             -> <id> ok | <id> err <reason>   (RNDADDENTROPY + RNDRESEEDCRNG)
use strict;

$| = 1;
my $RNDADDENTROPY = 0x40085203;
my $RNDRESEEDCRNG = 0x5207;
my $random;

sub random_fh {
  return $random if $random;
  open($random, '<', '/dev/random') or return undef;
  return $random;
}

while (my $line = <STDIN>) {
  chomp $line;
  my ($id, $cmd, @a) = split / /, $line;
  next unless defined $cmd;
  my $reply;
  if ($cmd eq 'ping') {
    $reply = 'ok pong';
  } elsif ($cmd eq 'clock') {
    my ($sysno, $sec, $nsec) = @a;
    my $ts = pack('qq', $sec, $nsec);
    my $r = syscall($sysno + 0, 0, $ts);
    $reply = $r == 0 ? 'ok' : "err clock_settime: $!";
  } elsif ($cmd eq 'entropy') {
    my $bytes = pack('H*', $a[0] // '');
    my $fh = random_fh();
    if (!$fh) {
      $reply = "err open /dev/random: $!";
    } else {
      my $req = pack('ii', length($bytes) * 8, length($bytes)) . $bytes;
      if (!ioctl($fh, $RNDADDENTROPY, $req)) {
        $reply = "err RNDADDENTROPY: $!";
      } elsif (!ioctl($fh, $RNDRESEEDCRNG, 0)) {
        $reply = "err RNDRESEEDCRNG: $!";
      } else {
        $reply = 'ok';
      }
    }
  } else {
    $reply = "err unknown command $cmd";
  }
  print "$id $reply\n";
}
